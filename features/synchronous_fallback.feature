Feature: The synchronous fallback, through an injected session or by configuration
  As a caller with my own SQLAlchemy session (in tests, or inside my own transactions)
  I want the audit service to write through that session, one INSERT and COMMIT per record
  So that I see each entry at once, without flushing

  Scenario: A service given a session writes through it synchronously
    Given a SQLAlchemy session on "app.db"
    And an audit service using that session
    Then the service is synchronous
    When I record a "config.changed" entry by "operator:alice" on "setting:max_tokens"
    Then the returned entry has a real database id
    And the session sees the entry at once
    And another connection sees the entry at once
    And the stored entry matches the returned one and has a real id

  Scenario: A session makes the service synchronous even when asynchronous recording is asked for
    Given the environment variable "CLEVERAGENTS_AUDIT_ASYNC" is "true"
    And a SQLAlchemy session on "app.db"
    And an audit service using that session, with asynchronous recording requested
    Then the service is synchronous
    When I record a "session.started" entry
    Then the returned entry has a real database id
    And the session sees the entry at once

  Scenario: Entries recorded through the session get ascending ids, and flush has nothing to wait for
    Given a SQLAlchemy session on "app.db"
    And an audit service using that session
    When I record 5 entries
    Then the entries got ascending ids
    And the database holds exactly the entries that were accepted, in order
    When I flush the service
    Then the flush succeeds

  Scenario: Closing the service leaves the caller's session usable
    Given a SQLAlchemy session on "app.db"
    And an audit service using that session
    When I record 2 entries
    And I close the service
    Then the session still works and sees 2 entries
    And recording another entry fails with AuditServiceClosedError

  Scenario: audit_async = false gives a synchronous service on its own engine
    Given an audit service writing to "audit.db" with "audit_async" set to "false"
    Then the service is synchronous
    When I record a "agent.completed" entry
    Then the returned entry has a real database id
    And another connection sees the entry at once
    And the statistics show 1 enqueued, 1 written and 0 failed
