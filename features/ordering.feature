Feature: Entries are stored in the order they were recorded
  As an auditor reading the trail back
  I want the entries one thread recorded to be stored in that order, with ascending ids
  So that the trail tells what happened in the order it happened

  Scenario Outline: One thread's entries keep their order, whatever the batch size (<batch_size>)
    Given an audit service writing to "audit.db" with "audit_batch_size" set to "<batch_size>"
    When one thread records <count> numbered entries
    And I flush the service
    Then the flush succeeds
    And the database holds <count> entries
    And the entries are stored in the order they were recorded
    And their event_ids are unique and ascend in the order they were recorded
    And their created_at times never go backwards

    Examples:
      | batch_size | count |
      | 1          | 60    |
      | 7          | 500   |
      | 500        | 2000  |

  Scenario: Several threads recording at once each keep their own order
    Given an audit service writing to "audit.db" with "audit_batch_size" set to "16"
    When 4 threads each record 300 numbered entries at the same time
    And I flush the service
    Then the flush succeeds
    And the database holds 1200 entries
    And each thread's entries are stored in the order that thread recorded them
    And their event_ids are unique and ascend in the order they were recorded
