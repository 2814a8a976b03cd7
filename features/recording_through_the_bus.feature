Feature: Recording the runtime's domain events without blocking the emitter
  As the agent runtime, which emits domain events on a ReactiveEventBus
  I want the attached audit service to record every audit event I emit
  So that auditing never puts database work on the agent's own thread

  Background:
    Given an audit service writing to "audit.db"
    And an event bus with the audit service attached

  Scenario: An emit returns while its entry is still pending, and flush persists it
    Given another connection holds the database's write lock
    When the runtime emits these events:
      | event_type    | actor         | resource        | correlation_id | payload                                     |
      | agent.started | agent:analyst | run:42          | run-42         | {"goal": "summarise Q3 revenue"}            |
      | tool.invoked  | agent:analyst | tool:web.search | run-42         | {"query": "q3 revenue", "top_k": 5}         |
      | llm.request   | agent:analyst | model:large     | run-42         | {"tokens": 1200, "temperature": 0.2}        |
      | tool.failed   |               |                 |                | {"error": "timeout", "retry": true, "n": 2} |
    Then every emit returned in less than 1 second
    And the statistics count 4 enqueued
    And the database holds no entries yet
    When the other connection releases the write lock
    And I flush the service
    Then the flush succeeds
    And the service holds the emitted events, in the order they were emitted

  Scenario: record() called directly returns a pending entry at once
    Given another connection holds the database's write lock
    When I record a "permission.denied" entry by "agent:analyst" on "tool:shell.run"
    Then record() returned in less than 1 second
    And the returned entry is pending with id -1
    And its event_id is a time-ordered UUID
    And its created_at is the time of the call, in UTC
    When the other connection releases the write lock
    And I flush the service
    Then the stored entry matches the returned one and has a real id

  Scenario Outline: Every audit event type emitted on the bus is recorded: <event_type>
    When the runtime emits a "<event_type>" event
    And I flush the service
    Then the flush succeeds
    And the service holds 1 "<event_type>" entry

    Examples:
      | event_type         |
      | agent.started      |
      | agent.completed    |
      | agent.failed       |
      | tool.invoked       |
      | tool.completed     |
      | tool.failed        |
      | llm.request        |
      | llm.response       |
      | permission.granted |
      | permission.denied  |
      | config.changed     |
      | session.started    |
      | session.ended      |

  Scenario Outline: The payload comes back exactly as it was emitted: <what>
    When the runtime emits a "llm.response" event with the payload <payload>
    And I flush the service
    Then the service holds one entry with the details <payload>

    Examples:
      | what                  | payload                                                   |
      | no payload            | {}                                                        |
      | nested values         | {"usage": {"in": 812, "out": [1, 2.5, null, true, "x"]}} |
      | text that looks null  | {"answer": "null", "note": null}                          |
      | non-ASCII text        | {"answer": "Zürich 東京 🚀"}                                 |
      | the smallest int64    | {"offset": -9223372036854775808}                          |
      | a 30-digit integer    | {"tokens": 123456789012345678901234567890}                |
      | a tiny float          | {"p": 5e-324}                                             |

  Scenario: Events of types the audit trail does not know are ignored
    When the runtime emits a "build.finished" event
    And the runtime emits a "tool.invoked" event
    And the runtime emits a "heartbeat" event
    And I flush the service
    Then the service holds only the "tool.invoked" events

  Scenario: A detached service records nothing more
    When the runtime emits a "session.started" event
    And the audit service is detached from the bus
    And the runtime emits a "session.ended" event
    And I flush the service
    Then the service holds only the "session.started" events

  Scenario: A payload that is not valid details reaches neither the emitter nor the trail
    Given another subscriber that counts every event
    And the log is captured
    When the runtime emits a "tool.completed" event with the payload {"latency": NaN}
    And the runtime emits a "tool.completed" event with the payload {"latency": 0.25}
    And I flush the service
    Then the flush succeeds
    And the other subscriber saw 2 events
    And an "event_handler_failed" error was logged
    And the service holds one entry with the details {"latency": 0.25}
