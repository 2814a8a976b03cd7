Feature: Moving a trail to PostgreSQL with its chain intact
  As an operator moving the audit trail from the embedded SQLite file to PostgreSQL
  I want the moved trail to be the same hash chain, with the same writers
  So that verify, and the checkpoints I kept of the old trail, still hold after the move

  The SQLite trail was written by real services: a first run that was purged since,
  then three more runs (one of them synchronous). CLEVERAGENTS_DATABASE_URL names it.
  Each scenario gets a fresh, empty PostgreSQL schema (CLEVERAGENTS_TEST_POSTGRES_URL
  names the server; without it the scenarios are skipped).

  Background:
    Given a SQLite trail written by four agents, the first of them purged since
    And a checkpoint of it kept in "source.checkpoint"
    And an empty PostgreSQL schema

  Scenario: Move the whole chain, then check it against the old trail's checkpoint
    When I run "cleveragents-audit export --chain --out trail.jsonl"
    And I run "cleveragents-audit import trail.jsonl" against PostgreSQL
    Then it exits with status 0
    And it says the entries kept their chain
    And PostgreSQL holds every entry of the SQLite trail with the same seq, hashes and writers
    When I run "cleveragents-audit verify --checkpoint source.checkpoint" against PostgreSQL
    Then it exits with status 0
    And it says the trail is intact, with 23 entries from seq 6 to seq 28

  Scenario: Run the import again, once more entries were recorded on SQLite
    When I run "cleveragents-audit export --chain --out trail.jsonl"
    And I run "cleveragents-audit import trail.jsonl" against PostgreSQL
    And an agent records 3 more entries in the SQLite trail
    And I run "cleveragents-audit export --chain --out trail.jsonl"
    And I run "cleveragents-audit import trail.jsonl --json" against PostgreSQL
    Then it reports 5 new entries of 28 read
    And PostgreSQL holds every entry of the SQLite trail with the same seq, hashes and writers

  Scenario: A schema that holds a trail of its own is refused and left as it was
    Given the PostgreSQL schema holds a trail of its own
    When I run "cleveragents-audit export --chain --out trail.jsonl"
    And I run "cleveragents-audit import trail.jsonl" against PostgreSQL
    Then it exits with status 1
    And stderr is one line that names "does not continue the target's chain"
    And the PostgreSQL trail is as it was

  Scenario: An import that stores nothing creates nothing
    Given a file "bad.jsonl" whose first line is not an entry
    When I run "cleveragents-audit import bad.jsonl" against PostgreSQL
    Then it exits with status 1
    And stderr is one line that names "bad.jsonl:1: event_id is missing; nothing was imported"
    And the PostgreSQL schema has no tables
