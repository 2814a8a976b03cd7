Feature: Auditing agents instrumented with OpenTelemetry
  As the operator of an agent instrumented with OpenTelemetry
  I want its AI spans in the audit trail, joined to its traces by the trace id
  So that one span processor audits the agent, without glue code

  Scenario: An agent run's GenAI spans become entries, in order, under its trace id
    Given an audit service writing to "audit.db"
    And a tracer provider with the audit span processor
    When the agent "weather" asks "gpt-4o" and calls the tool "get_weather" with the arguments {"city": "Paris", "password": "hunter2"}
    And I flush the service
    Then the trail holds these entries, all with the trace id as correlation id:
      | event_type      | resource    |
      | agent.started   | weather     |
      | llm.request     | gpt-4o      |
      | llm.response    | gpt-4o      |
      | tool.invoked    | get_weather |
      | tool.completed  | get_weather |
      | agent.completed | weather     |
    And no stored entry contains "hunter2"

  Scenario: A model call that fails is recorded as failed
    Given an audit service writing to "audit.db"
    And a tracer provider with the audit span processor
    When a call to "gpt-4o" fails with "rate limited"
    And I flush the service
    Then the trail holds these entries, all with the trace id as correlation id:
      | event_type  | resource |
      | llm.request | gpt-4o   |
      | llm.failed  | gpt-4o   |
    And the "llm.failed" entry's error message is "rate limited"

  Scenario: An entry recorded inside a span carries the span's ids
    Given an audit service writing to "audit.db"
    And a tracer provider with the audit span processor
    When I record a "permission.denied" entry inside the span "handle-request"
    And I flush the service
    Then the stored entry's details hold the trace id and span id of "handle-request"
