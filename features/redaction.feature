Feature: Secrets never reach the audit trail
  As a security reviewer
  I want passwords, tokens and keys masked before an entry is even queued
  So that the trail itself never becomes a place to steal them from

  Scenario: Values under sensitive keys are masked, at any depth
    Given an audit service writing to "audit.db"
    When I record a "tool.invoked" entry with the details {"headers": {"Authorization": "Basic dXNlcjpwdw==", "X-Api-Key": "k1"}, "env": [{"OPENAI_API_KEY": "sk-x"}], "db_password": 123456, "path": "/tmp"}
    And I flush the service
    Then the stored details are {"headers": {"Authorization": "[REDACTED]", "X-Api-Key": "[REDACTED]"}, "env": [{"OPENAI_API_KEY": "[REDACTED]"}], "db_password": "[REDACTED]", "path": "/tmp"}
    And the details I passed are unchanged

  Scenario: Strings that look like secrets are masked where they appear
    Given an audit service writing to "audit.db"
    When I record a "tool.invoked" entry with the details {"cmd": "curl -H 'Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2ln' https://api.example.com", "dsn": "postgresql://app:hunter2@db/prod"}
    And I flush the service
    Then the stored details are {"cmd": "curl -H 'Authorization: [REDACTED]' https://api.example.com", "dsn": "postgresql://[REDACTED]@db/prod"}

  Scenario: Token counts are not secrets
    Given an audit service writing to "audit.db"
    When I record a "llm.response" entry with the details {"usage": {"prompt_tokens": 812, "completion_tokens": 143}}
    And I flush the service
    Then the stored details are {"usage": {"prompt_tokens": 812, "completion_tokens": 143}}

  Scenario: The keys and patterns come from the environment
    Given the environment variable "CLEVERAGENTS_AUDIT_REDACT_KEYS" is "ssn,pin"
    And the environment variable "CLEVERAGENTS_AUDIT_REDACT_PATTERNS" is "ACCT-[0-9]{6}"
    And an audit service writing to "audit.db"
    When I record a "tool.invoked" entry with the details {"customer_ssn": "078-05-1120", "memo": "paid from ACCT-123456", "password": "kept"}
    And I flush the service
    Then the stored details are {"customer_ssn": "[REDACTED]", "memo": "paid from [REDACTED]", "password": "kept"}

  Scenario: Redaction can be turned off
    Given the environment variable "CLEVERAGENTS_AUDIT_REDACT" is "false"
    And an audit service writing to "audit.db"
    When I record a "tool.invoked" entry with the details {"password": "shown"}
    And I flush the service
    Then the stored details are {"password": "shown"}
