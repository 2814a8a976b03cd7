Feature: One bad entry never stops the trail
  As an operator of an audit trail
  I want what no backend can store refused at the call, and the writer to outlive any failure
  So that every entry record() accepted is committed, spooled or declared, never silently lost

  Scenario Outline: A lone surrogate in the details is refused at the call on <backend>
    Given an audit service writing to the <backend> test database
    When I try to record an entry with the details {'msg': '\ud800'}
    Then the record is refused with ValueError
    And the error message mentions "details['msg'] holds the lone surrogate U+D800"
    And the service has committed 0 entries, failed none, and verifies intact

    Examples:
      | backend    |
      | SQLite     |
      | PostgreSQL |

  Scenario Outline: An actor beyond the limits is refused on <backend>, one at the limit is stored
    Given an audit service writing to the <backend> test database
    When I try to record an entry by an actor of 1048576 bytes
    Then the record is refused with ValueError
    And the error message mentions "actor is 1048576 bytes of UTF-8; at most 1024 are allowed"
    When I try to record an entry by an actor holding a NUL
    Then the record is refused with ValueError
    And the error message mentions "actor holds U+0000 (NUL)"
    When I record an entry by an actor of 1024 bytes
    Then the service has committed 1 entries, failed none, and verifies intact

    Examples:
      | backend    |
      | SQLite     |
      | PostgreSQL |

  Scenario: The writer survives a failure injected into the insert and the spool
    Given an audit service writing to the SQLite test database
    And every batch holding an entry by "poison" fails with an unknown exception
    And appending to the spool fails with an unknown exception
    When I record 3 entries
    And I record an entry by "poison"
    And I record 3 more entries
    And I flush the service
    Then the flush reports a failure
    And later entries are still committed
    And the statistics show 9 enqueued, 8 written and 1 failed
    And verify reports the failed entry as declared, not as tampering
