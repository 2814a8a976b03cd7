Feature: A database URL that cannot be used fails at the constructor, naming the URL
  As an operator
  I want AuditService(...) itself to fail when its database URL is malformed or unreachable
  So that the error reaches me at start-up, never later in a background thread

  Background:
    Given a file "notes.txt" that is not a database

  Scenario Outline: <problem> (<mode>)
    When I create an <mode> audit service for the database URL "<url>"
    Then creating it failed with an AuditStorageError naming "<named>"
    And no audit writer thread was started

    Examples:
      | problem                    | mode         | url                                             | named                                 |
      | not a URL at all           | asynchronous | not a url                                       | not a url                             |
      | an unsupported database    | asynchronous | mysql://audit@db.example/audit                  | mysql://audit@db.example/audit        |
      | a driver that is missing   | asynchronous | postgresql+nosuchdriver://audit@db.example/audit | postgresql+nosuchdriver://audit@db.example/audit |
      | a directory that is absent | asynchronous | sqlite:///{scenario_dir}/absent/dir/audit.db    | {scenario_dir}/absent/dir/audit.db    |
      | a directory that is absent | synchronous  | sqlite:///{scenario_dir}/absent/dir/audit.db    | {scenario_dir}/absent/dir/audit.db    |
      | a file that is not SQLite  | asynchronous | sqlite:///{scenario_dir}/notes.txt              | {scenario_dir}/notes.txt              |
      | a server that is not there | asynchronous | postgresql://audit@127.0.0.1:1/audit            | audit@127.0.0.1:1/audit               |
      | a server that is not there | synchronous  | postgresql+psycopg://audit@127.0.0.1:1/audit    | postgresql+psycopg://audit@127.0.0.1:1/audit |

  Scenario: The error names the URL without its password
    When I create an asynchronous audit service for the database URL "postgresql+psycopg://audit:s3cret@127.0.0.1:1/audit"
    Then creating it failed with an AuditStorageError naming "postgresql+psycopg://audit:***@127.0.0.1:1/audit"
    And the error does not contain "s3cret"

  Scenario: A bad CLEVERAGENTS_DATABASE_URL fails at AuditService() too
    Given the environment variable "CLEVERAGENTS_DATABASE_URL" is "sqlite:///{scenario_dir}/absent/audit.db"
    When I try to create an audit service from the environment
    Then creating it failed with an AuditStorageError naming "{scenario_dir}/absent/audit.db"
    And no audit writer thread was started
