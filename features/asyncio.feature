Feature: Recording from asyncio code
  As an agent runtime built on asyncio
  I want to await arecord(), aflush() and aclose()
  So that auditing never freezes my event loop, not even when the database is stuck

  Scenario: arecord returns at once with the pending entry, as record does
    Given an audit service writing to "audit.db"
    When I arecord a "tool.invoked" entry in an event loop
    Then the returned entry is pending with id -1
    When I aflush the service
    Then the database holds 1 entry

  Scenario: On a synchronous service arecord returns the committed entry
    Given an audit service writing to "audit.db" with "audit_async" set to "false"
    When I arecord a "session.started" entry in an event loop
    Then the returned entry has a real database id
    And the database holds 1 entry

  Scenario: Bad input is refused at the await, as record refuses it
    Given an audit service writing to "audit.db"
    When I try to arecord an entry of type "tool.exploded"
    Then the record is refused with ValueError
    And the error message mentions "unknown audit event type"

  Scenario: A full queue and a stuck database do not freeze the event loop (the heartbeat runs on it)
    Given an audit service writing to "audit.db" with these settings:
      | setting             | value |
      | audit_queue_maxsize | 2     |
      | audit_batch_size    | 1     |
      | audit_overflow      | block |
    And another process holds the database's write lock for 3 seconds
    When an asyncio task arecords 10 entries while a heartbeat ticks every 10 ms
    Then the heartbeat never stalled for 0.1 seconds or more
    And some arecord calls waited until the write lock was released
    And the database holds 10 entries

  Scenario: async with closes the service and keeps every entry
    When I use a new service on "audit.db" in "async with" to arecord 3 entries
    Then the service is closed
    And arecord on the closed service fails with AuditServiceClosedError
    And the database holds 3 entries
