Feature: What record() does when the queue is full
  As the runtime
  I want to choose whether record() waits for room or refuses at once when the writer falls behind
  So that a stuck database either slows the agent down or is reported, never hidden

  Scenario Outline: With overflow "<policy>" a full queue refuses the entry with AuditQueueFullError
    Given an audit service writing to "audit.db" with these settings:
      | setting             | value           |
      | audit_queue_maxsize | 1               |
      | audit_batch_size    | 1               |
      | audit_overflow      | <policy>        |
      | audit_block_timeout | <block_timeout> |
    And another connection holds the database's write lock
    When I record entries until one is refused, at most 3 times
    Then the last record() failed with AuditQueueFullError
    And that error is a RuntimeError
    And the refused record() waited at least <waited> seconds first
    And the statistics count 1 rejected
    When the other connection releases the write lock
    And I flush the service
    Then the flush succeeds
    And the database holds exactly the entries that were accepted, in order

    Examples:
      | policy | block_timeout | waited |
      | raise  | 30            | 0      |
      | block  | 0.3           | 0.3    |

  Scenario: Once the writer catches up, the queue accepts entries again
    Given an audit service writing to "audit.db" with these settings:
      | setting             | value |
      | audit_queue_maxsize | 1     |
      | audit_batch_size    | 1     |
      | audit_overflow      | raise |
    And another connection holds the database's write lock
    When I record entries until one is refused, at most 3 times
    And the other connection releases the write lock
    And I flush the service
    And I record 1 more entry
    And I flush the service
    Then the flush succeeds
    And the database holds exactly the entries that were accepted, in order
