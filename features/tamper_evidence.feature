Feature: Tamper evidence: the trail shows when it was changed after the fact
  As a security reviewer answering for the audit trail
  I want to check that no entry was edited, removed or cut off since it was written
  So that the trail can be relied on as evidence, and kept short without losing that

  Every entry is numbered without gaps (its seq) and linked to the one before it by a
  hash. "cleveragents-audit verify" recomputes every link: exit status 0 means intact,
  1 tampered, 2 possible loss. The agent's trail of these scenarios holds its 10
  entries between the writer's own "opened" and "closed" entries: seq 1 to 12.
  CLEVERAGENTS_DATABASE_URL names it, so the commands need no --database-url.

  Background:
    Given an agent recorded 10 entries in the trail "evidence.db" and shut down cleanly

  Scenario: An untouched trail verifies
    When I run "cleveragents-audit verify"
    Then it exits with status 0
    And it says the trail is intact, with 12 entries from seq 1 to seq 12

  Scenario: An edited entry is reported with its seq
    Given someone with write access to the database changes the actor of the entry at seq 7
    When I run "cleveragents-audit verify --json"
    Then it exits with status 1
    And the report names the entry at seq 7 as altered, and nothing else

  Scenario: A removed entry is reported where it is missing
    Given someone with write access to the database deletes the entry at seq 4
    When I run "cleveragents-audit verify --json"
    Then it exits with status 1
    And the report says the entry at seq 4 is missing

  Scenario: Entries cut from the end are caught by a checkpoint kept elsewhere
    When I run "cleveragents-audit checkpoint --out checkpoints.jsonl"
    Then it exits with status 0
    Given someone with write access to the database removes the last 3 entries and covers it up
    When I run "cleveragents-audit verify"
    Then it exits with status 2
    When I run "cleveragents-audit verify --checkpoint checkpoints.jsonl --json"
    Then it exits with status 1
    And the report says entries after seq 9 were cut off, up to the checkpoint at seq 12

  Scenario: A purge keeps the trail verifiable
    Given the agent recorded 5 more entries in a second run
    When I purge what was recorded before the second run
    Then it exits with status 0
    And the entries of the first run are gone, and the 5 of the second run are kept
    When I run "cleveragents-audit verify"
    Then it exits with status 0
