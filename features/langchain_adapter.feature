Feature: LangChain and LangGraph runs are audited by one callback handler
  As the operator of an agent built on LangChain or LangGraph
  I want every chain, model call and tool call of a run in the audit trail
  So that I can see what the agent did, under one correlation id, without glue code

  Scenario: A LangGraph agent's run is recorded in order, under its root run id
    Given an audit service writing to "audit.db"
    When I run the weather agent with the LangChain audit handler
    Then the agent answered "It is sunny in Paris."
    And the trail holds these entries, each with the run's root id as correlation id:
      | event type      | resource                  |
      | chain.started   | chain:LangGraph           |
      | chain.started   | chain:agent               |
      | llm.request     | llm:GenericFakeChatModel  |
      | llm.response    | llm:GenericFakeChatModel  |
      | chain.started   | chain:route               |
      | chain.completed | chain:route               |
      | chain.completed | chain:agent               |
      | chain.started   | chain:tools               |
      | tool.invoked    | tool:get_weather          |
      | tool.completed  | tool:get_weather          |
      | chain.completed | chain:tools               |
      | chain.started   | chain:agent               |
      | llm.request     | llm:GenericFakeChatModel  |
      | llm.response    | llm:GenericFakeChatModel  |
      | chain.started   | chain:route               |
      | chain.completed | chain:route               |
      | chain.completed | chain:agent               |
      | chain.completed | chain:LangGraph           |

  Scenario: The API key the model passed to the tool never reaches the trail
    Given an audit service writing to "audit.db"
    When I run the weather agent with the LangChain audit handler
    Then the "tool.invoked" entry has the input {"city": "Paris", "api_key": "[REDACTED]"}
    And no stored entry contains the API key

  Scenario: The async handler records a run made with ainvoke
    Given an audit service writing to "audit.db"
    When I run the weather agent with ainvoke and the async LangChain audit handler
    Then the agent answered "It is sunny in Paris."
    And the trail holds 18 entries under the run's root id

  Scenario: A service that cannot record does not break the run; the loss is counted
    Given an audit service writing to "audit.db"
    When I close the service
    And I run the weather agent with the LangChain audit handler
    Then the agent answered "It is sunny in Paris."
    And the statistics count 18 adapter_failed
