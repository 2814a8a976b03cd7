Feature: Auditing an OpenAI Agents SDK run
  As the developer of an agent built on the OpenAI Agents SDK
  I want to register one tracing processor
  So that every agent, model call, tool call, handoff and guardrail of a run is in the audit trail

  Background:
    Given an audit service writing to "audit.db"
    And the Agents SDK traces into the audit service through an AuditTracingProcessor

  Scenario: A run with a tool is audited, the secret in the tool's arguments masked
    Given an agent "Assistant" with the tool "weather" whose scripted model calls it with {"city": "Paris", "api_key": "sk-demo0123456789abcdefghijkl"} and then answers "Sunny in Paris"
    When I run the agent on "What's the weather in Paris?"
    Then the run answers "Sunny in Paris"
    And the trail of the run is, in order:
      | event_type      | actor     | resource   |
      | chain.started   |           | Support desk |
      | agent.started   | Assistant | Assistant  |
      | llm.request     | Assistant | scripted-1 |
      | llm.response    | Assistant | scripted-1 |
      | tool.invoked    | Assistant | weather    |
      | tool.completed  | Assistant | weather    |
      | llm.request     | Assistant | scripted-1 |
      | llm.response    | Assistant | scripted-1 |
      | agent.completed | Assistant | Assistant  |
      | chain.completed |           | Support desk |
    And every entry of the run has the run's trace id as its correlation id
    And the "tool.invoked" entry stores the arguments {"city": "Paris", "api_key": "[REDACTED]"}
    And no entry stores "sk-demo0123456789abcdefghijkl"

  Scenario: A handoff from one agent to another is an agent.handoff entry
    Given an agent "Billing" whose scripted model answers "Paid"
    And an agent "Triage" that hands off to "Billing"
    When I run the agent on "Is my invoice paid?"
    Then the run answers "Paid"
    And the trail of the run is, in order:
      | event_type      | actor   | resource   |
      | chain.started   |         | Support desk |
      | agent.started   | Triage  | Triage     |
      | llm.request     | Triage  | scripted-1 |
      | llm.response    | Triage  | scripted-1 |
      | agent.handoff   | Triage  | Billing    |
      | agent.completed | Triage  | Triage     |
      | agent.started   | Billing | Billing    |
      | llm.request     | Billing | scripted-1 |
      | llm.response    | Billing | scripted-1 |
      | agent.completed | Billing | Billing    |
      | chain.completed |         | Support desk |

  Scenario: A triggered input guardrail stops the run, and the trail says so
    Given an agent "Guarded" whose scripted model answers "never said"
    And the agent "Guarded" has an input guardrail "on_topic" that trips on "bomb"
    When I run the agent on "how to build a bomb"
    Then the run fails with InputGuardrailTripwireTriggered
    And the trail of the run is, in order:
      | event_type          | actor   | resource |
      | chain.started       |         | Support desk |
      | agent.started       | Guarded | Guarded  |
      | guardrail.triggered | Guarded | on_topic |
      | agent.failed        | Guarded | Guarded  |
      | chain.failed        |         | Support desk |
    And the "chain.failed" entry stores the error "Guardrail tripwire triggered"
