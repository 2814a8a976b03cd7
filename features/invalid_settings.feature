Feature: Bad settings fail at once, naming what is wrong
  As an operator
  I want a bad setting to fail when the settings are made, with an error naming the field
  So that a misconfigured runtime does not start and fail later

  Scenario Outline: <field> = <value> fails at Settings(...) with a ValidationError
    When I create settings with "<field>" set to <value>
    Then it fails with a ValidationError naming "<field>"

    Examples:
      | field                 | value     |
      | audit_queue_maxsize   | 0         |
      | audit_queue_maxsize   | -5        |
      | audit_queue_maxsize   | 'many'    |
      | audit_batch_size      | 0         |
      | audit_batch_size      | 2.5       |
      | audit_overflow        | 'drop'    |
      | audit_overflow        | 'BLOCK'   |
      | audit_async           | 'maybe'   |
      | audit_block_timeout   | 0         |
      | audit_block_timeout   | -1.0      |
      | audit_retry_deadline  | 0         |
      | audit_close_timeout_s | -3        |
      | database_url          | ''        |
      | database_url          | None      |

  Scenario Outline: <variable>=<value> fails at Settings() with a ValidationError naming <field>
    Given the environment variable "<variable>" is "<value>"
    When I create the settings from the environment
    Then it fails with a ValidationError naming "<field>"

    Examples:
      | variable                         | value  | field               |
      | CLEVERAGENTS_AUDIT_QUEUE_MAXSIZE | 0      | audit_queue_maxsize |
      | CLEVERAGENTS_AUDIT_QUEUE_MAXSIZE | lots   | audit_queue_maxsize |
      | CLEVERAGENTS_AUDIT_BATCH_SIZE    | 0      | audit_batch_size    |
      | CLEVERAGENTS_AUDIT_BATCH_SIZE    | 1e3x   | audit_batch_size    |
      | CLEVERAGENTS_AUDIT_OVERFLOW      | drop   | audit_overflow      |
      | CLEVERAGENTS_AUDIT_ASYNC         | maybe  | audit_async         |
      | CLEVERAGENTS_AUDIT_BLOCK_TIMEOUT | -1     | audit_block_timeout |
      | CLEVERAGENTS_DATABASE_URL        |        | database_url        |

  Scenario: A bad environment variable fails at AuditService(), before any writer starts
    Given the environment variable "CLEVERAGENTS_AUDIT_BATCH_SIZE" is "0"
    When I try to create an audit service from the environment
    Then it fails with a ValidationError naming "audit_batch_size"
    And no audit writer thread was started
