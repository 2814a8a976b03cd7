Feature: Entries the database cannot take are counted and logged, never silently lost
  As an operator
  I want entries that could not be written to show in stats() and in the log, and flush() to say so
  So that a broken audit database is noticed

  Scenario: Entries written to a dropped table fail: flush() returns False and stats() counts them
    Given an audit service writing to "audit.db" with "audit_retry_deadline" set to "0.5"
    And the log is captured
    And I have recorded 2 entries
    When I flush the service
    And another connection drops the audit_log table
    And I record 3 more entries
    And I flush the service
    Then the flush reports a failure
    And the statistics show 5 enqueued, 2 written and 3 failed
    And an "audit_entries_failed" error was logged for 3 entries

  Scenario: The writer keeps working once the table is back
    Given an audit service writing to "audit.db" with "audit_retry_deadline" set to "0.5"
    When another connection drops the audit_log table
    And I record 2 entries
    And I flush the service
    Then the flush reports a failure
    When another connection creates the audit_log table again
    And I record 1 more entry
    And I flush the service
    Then the flush succeeds
    And the database holds 1 entry
    And the statistics show 3 enqueued, 1 written and 2 failed

  Scenario: A lock held past the retry deadline fails the entry instead of waiting for ever
    Given an audit service writing to "audit.db" with "audit_retry_deadline" set to "0.2"
    And the log is captured
    And another connection holds the database's write lock
    When I record 1 entry
    And I flush the service
    Then the flush reports a failure
    And the statistics show 1 enqueued, 0 written and 1 failed
    And an "audit_entries_failed" error was logged for 1 entry

  Scenario: A synchronous service raises the write error to the caller and counts it
    Given an audit service writing to "audit.db" with "audit_async" set to "false"
    And the log is captured
    When another connection drops the audit_log table
    And I try to record an entry
    Then the record is refused with OperationalError
    And the statistics show 1 enqueued, 0 written and 1 failed
    And an "audit_entry_failed" error was logged
