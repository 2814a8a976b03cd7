Feature: flush() and close(): waiting for the writer, and stopping it
  As code that records audit entries
  I want flush() to wait until what I recorded is committed, and close() to stop the service
  So that I know when entries are durable, and nothing recorded is lost or silently dropped

  Scenario: flush() waits until every entry recorded before it is committed
    Given an audit service writing to "audit.db"
    When I record 25 entries
    And I flush the service
    Then the flush succeeds
    And the database holds 25 entries
    And the statistics show 25 enqueued, 25 written and 0 failed

  Scenario: The service goes on recording after a flush
    Given an audit service writing to "audit.db"
    When I record 3 entries
    And I flush the service
    And I record 2 more entries
    And I flush the service
    Then the flush succeeds
    And the database holds exactly the entries that were accepted, in order

  Scenario: close() persists what was recorded after the last flush
    Given an audit service writing to "audit.db"
    When I record 2 entries
    And I flush the service
    And I record 3 more entries
    And I close the service
    Then the database holds exactly the entries that were accepted, in order

  Scenario: close() waits for entries the writer could not write yet
    Given an audit service writing to "audit.db"
    And another connection holds the database's write lock
    When I record 10 entries
    And the other connection releases the write lock
    And I close the service
    Then the database holds exactly the entries that were accepted, in order

  Scenario: Recording after close() is refused
    Given an audit service writing to "audit.db"
    When I record 1 entry
    And I close the service
    Then the service is closed
    And recording another entry fails with AuditServiceClosedError
    And that error is a RuntimeError
    And the database holds exactly the entries that were accepted, in order

  Scenario: close() can be called again
    Given an audit service writing to "audit.db"
    When I record 1 entry
    And I close the service
    And I close the service again
    Then the service is closed
    And the database holds 1 entry

  Scenario: The service is a context manager that closes itself
    When I use a new service on "scoped.db" as a context manager to record 4 entries
    Then the service is closed
    And the database "scoped.db" holds 4 entries

  Scenario: flush() with a timeout gives up instead of waiting for a writer that cannot write
    Given an audit service writing to "audit.db"
    And another connection holds the database's write lock
    When I record 1 entry
    And I flush the service with a timeout of 0.2 seconds
    Then the flush gave up after about 0.2 seconds
    When the other connection releases the write lock
    And I flush the service
    Then the flush succeeds
    And the database holds 1 entry

  Scenario: close() gives up after the close timeout, and says so, when the database stays locked
    Given an audit service writing to "audit.db" with "audit_close_timeout_s" set to "0.5"
    And the log is captured
    And another connection holds the database's write lock
    When I record 1 entry
    And I close the service
    Then close returned within 3 seconds
    And the service is closed
    And an "audit_close_incomplete" error was logged
