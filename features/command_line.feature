Feature: The cleveragents-audit command line
  As an operator or a security reviewer at a terminal, often during an incident
  I want to find who did what, and when, without writing SQL
  So that I can answer in seconds, and move or check the trail with one command

  The trail of these scenarios holds two agent runs ("run-a", then "run-b"), six
  entries each, an hour apart: ids 1 to 12. CLEVERAGENTS_DATABASE_URL names it, so
  the commands need no --database-url.

  Background:
    Given an audit trail with two agent runs

  Scenario: Find what an actor did, as JSON Lines
    When I run "cleveragents-audit query --actor agent:analyst --type tool.invoked --json"
    Then it exits with status 0
    And it prints the entries 4 and 10 as JSON, each with every field
    And every entry printed is by "agent:analyst" and of type "tool.invoked"

  Scenario: Page through the trail by id
    When I run "cleveragents-audit query --limit 5 --json"
    Then it prints the entries 1 to 5 as JSON
    When I run "cleveragents-audit query --limit 5 --after-id 5 --json"
    Then it prints the entries 6 to 10 as JSON
    When I run "cleveragents-audit query --limit 5 --after-id 10 --json"
    Then it prints the entries 11 to 12 as JSON

  Scenario: Piped without --json, one tab-separated line per entry
    When I run "cleveragents-audit query --type permission.denied"
    Then it prints 2 lines of 7 tab-separated fields

  Scenario: The newest entries of a run
    When I run "cleveragents-audit tail -n 2 --correlation-id run-a --json"
    Then it prints the entries 5 to 6 as JSON

  Scenario Outline: Bad input is one line on stderr and exit status 2 (<problem>)
    When I run "cleveragents-audit <command>"
    Then it exits with status 2
    And stdout is empty
    And stderr is one line that names "<named>"

    Examples:
      | problem              | command                                            | named                                      |
      | unknown event type   | query --type tool.used                             | unknown event type 'tool.used'             |
      | a date that is none  | tail --since 2026-02-30                            | --since: '2026-02-30' is not a time        |
      | a time ago, garbled  | export --until 15minutes                           | --until: '15minutes' is not a time         |
      | a malformed URL      | stats --database-url ::nope::                      | malformed database URL '::nope::'          |
      | no database there    | query --database-url sqlite:///{scenario_dir}/x.db | no audit database at {scenario_dir}/x.db   |
      | an unknown option    | query --colour                                     | No such option: --colour                   |
      | before the year 1    | query --since 99999999d                            | --since: '99999999d' is out of range       |
      | too many hours       | tail --until 99999999999999999999h                 | --until: '99999999999999999999h' is out of range |
      | past 9999 in UTC     | stats --since 9999-12-31T23:59:59-05:00            | --since: '9999-12-31T23:59:59-05:00' is out of range |
      | before 1 in UTC      | purge --before 0001-01-01T00:00:00+05:00           | --before: '0001-01-01T00:00:00+05:00' is out of range |
      | a minimum age garbled | purge --before 90d --min-age soon                 | --min-age: 'soon' is not a duration        |

  Scenario: tail -f shows what another process commits, until Ctrl-C
    Given "cleveragents-audit tail -f --json -n 1" is running
    When another process records 25 entries
    Then tail prints those 25 entries, in the order they were recorded
    When I press Ctrl-C
    Then tail exits with status 0, with nothing on stderr

  Scenario: Move the trail to a new database, and do it again safely
    When I run "cleveragents-audit export --out trail.jsonl"
    And I run "cleveragents-audit import trail.jsonl --database-url sqlite:///{scenario_dir}/moved.db"
    Then it exits with status 0
    And "moved.db" holds the 12 entries with the same event ids, times and details
    When I run "cleveragents-audit import trail.jsonl --database-url sqlite:///{scenario_dir}/moved.db --json"
    Then it reports 0 new entries of 12 read

  Scenario: Totals for a period
    When I run "cleveragents-audit stats --since 2026-03-01T10:00:00Z --json"
    Then the report counts 6 rows of 12, 4 by "agent:analyst" and 2 by "user:zoë"
    And the report counts 1 "permission.denied" entry

  Scenario: A database made before migrations is refused until it is upgraded
    Given a database "legacy.db" whose audit_log was made before migrations, with 3 entries
    When I create an asynchronous audit service for the database URL "sqlite:///{scenario_dir}/legacy.db"
    Then creating it failed with an AuditStorageError naming "cleveragents-audit db upgrade"
    When I run "cleveragents-audit db current --check --database-url sqlite:///{scenario_dir}/legacy.db"
    Then it exits with status 1
    When I run "cleveragents-audit db upgrade --database-url sqlite:///{scenario_dir}/legacy.db"
    Then it exits with status 0
    When I run "cleveragents-audit query --json --database-url sqlite:///{scenario_dir}/legacy.db"
    Then it prints the entries 1 to 3 as JSON

  Scenario: The version of the command line
    When I run "cleveragents-audit --version"
    Then it exits with status 0
    And it prints "cleveragents-audit" and the version of the package

  Scenario: A purge that would remove recent entries asks first
    Given 2 more entries recorded an hour ago
    When I run "cleveragents-audit purge --before 2099-01-01 --dry-run --json"
    Then it exits with status 0
    And the dry run says 14 entries from seq 1 to seq 14 would go, 2 of them younger than the minimum age
    And the trail still holds 14 entries
    When I run "cleveragents-audit purge --before 2099-01-01"
    Then it exits with status 2
    And stdout is empty
    And stderr is one line that names "would remove 2 entries younger than --min-age 1d"
    And the trail still holds 14 entries
    When I run "cleveragents-audit purge --before 2099-01-01 --min-age 2h"
    Then it exits with status 2
    And the trail still holds 14 entries
    When I run "cleveragents-audit purge --before 2099-01-01 --min-age 30m"
    Then it exits with status 0
    And the trail still holds 1 entries
    When I run "cleveragents-audit verify"
    Then it exits with status 0
