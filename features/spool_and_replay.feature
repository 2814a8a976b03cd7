Feature: Entries the database will not take are kept in a spool, and a replay brings them back
  As an operator
  I want every entry that could not be written kept in a private file I can replay
  So that a broken audit database costs me no entries, and a replay never doubles one

  Scenario: Entries the database refuses land in the spool, and a replay brings them back
    Given an audit service writing to "audit.db" with "audit_retry_deadline" set to "0.3"
    And the log is captured
    And I have recorded 2 entries
    When I flush the service
    And another connection drops the audit_log table
    And I record 5 more entries
    And I flush the service
    Then the flush reports a failure
    And the statistics count 5 spooled
    And the spool beside "audit.db" holds the last 5 entries, one JSON object a line
    And the spool is readable and writable by its owner only
    And the "audit_entries_failed" error names the spool
    When another connection creates the audit_log table again
    And I replay the spool
    Then the replay read the 5 entries and the writer's own rows, and inserted them all
    And the database holds each of the last 5 entries exactly once
    And the spool is empty

  Scenario: Replaying twice changes nothing
    Given 4 entries the database refused are in the spool of "audit.db"
    And a copy of the spool is kept
    When another connection creates the audit_log table again
    And I replay the spool
    And I replay the spool
    Then the replay read 0 entries and inserted 0
    When I replay the copy of the spool
    Then the replay read the 4 entries and the writer's own rows again, and inserted none
    And the database holds each of the last 4 entries exactly once

  Scenario: A torn last line and a line of garbage are reported by number and kept aside
    Given 3 entries the database refused are in the spool of "audit.db"
    And the writer's own rows are taken out of the spool
    And the line "this is not an audit entry" is inserted as line 2 of the spool
    And the spool ends with half a line, as after a crash in the middle of an append
    When another connection creates the audit_log table again
    And I replay the spool
    Then the replay read 3 entries and inserted 3
    And the replay rejected lines 2 and 5
    And line 5 was rejected as a torn last line
    And the rejects file holds lines 2 and 5 with their text
    And the rejects file is readable and writable by its owner only
    And the spool is empty
