Feature: Settings from CLEVERAGENTS_* environment variables and a .env file
  As an operator deploying the runtime
  I want to configure the audit service through environment variables
  So that I can change its behaviour without changing code

  Scenario Outline: CLEVERAGENTS_AUDIT_ASYNC=<value> makes the service <mode>
    Given the environment variable "CLEVERAGENTS_AUDIT_ASYNC" is "<value>"
    When I create an audit service from the environment
    Then the service is <mode>

    Examples:
      | value | mode         |
      | false | synchronous  |
      | 0     | synchronous  |
      | true  | asynchronous |
      | 1     | asynchronous |

  Scenario Outline: <variable> sets <field>
    Given the environment variable "<variable>" is "<value>"
    When I create an audit service from the environment
    Then the service's setting "<field>" is <expected>

    Examples:
      | variable                           | value                   | field                 | expected                  |
      | CLEVERAGENTS_AUDIT_QUEUE_MAXSIZE   | 250                     | audit_queue_maxsize   | 250                       |
      | CLEVERAGENTS_AUDIT_BATCH_SIZE      | 64                      | audit_batch_size      | 64                        |
      | CLEVERAGENTS_AUDIT_OVERFLOW        | raise                   | audit_overflow        | 'raise'                   |
      | CLEVERAGENTS_AUDIT_BLOCK_TIMEOUT   | 2.5                     | audit_block_timeout   | 2.5                       |
      | CLEVERAGENTS_DATABASE_URL          | sqlite:///from-env.db   | database_url          | 'sqlite:///from-env.db'   |

  Scenario: Without any setting the service writes to cleveragents_audit.db in the working directory
    When I create an audit service from the environment
    Then the service is asynchronous
    When I record 2 entries
    And I flush the service
    Then the database "cleveragents_audit.db" holds 2 entries

  Scenario: CLEVERAGENTS_DATABASE_URL chooses the database
    Given the environment variable "CLEVERAGENTS_DATABASE_URL" names the SQLite file "from-env.db"
    When I create an audit service from the environment
    And I record 3 entries
    And I flush the service
    Then the database "from-env.db" holds 3 entries

  Scenario Outline: CLEVERAGENTS_AUDIT_BATCH_SIZE=<batch_size> bounds the rows of one transaction
    Given the environment variable "CLEVERAGENTS_AUDIT_BATCH_SIZE" is "<batch_size>"
    When I create an audit service from the environment
    And another connection holds the database's write lock
    And I record 6 entries
    And the other connection releases the write lock
    And I flush the service
    Then the database holds 6 entries
    And the writer committed them in <fewest> to <most> transactions

    Examples:
      | batch_size | fewest | most |
      | 1          | 6      | 6    |
      | 3          | 2      | 3    |
      | 500        | 1      | 2    |

  Scenario: CLEVERAGENTS_AUDIT_QUEUE_MAXSIZE and CLEVERAGENTS_AUDIT_OVERFLOW=raise refuse entries when the queue is full
    Given the environment variable "CLEVERAGENTS_AUDIT_QUEUE_MAXSIZE" is "1"
    And the environment variable "CLEVERAGENTS_AUDIT_BATCH_SIZE" is "1"
    And the environment variable "CLEVERAGENTS_AUDIT_OVERFLOW" is "raise"
    When I create an audit service from the environment
    And another connection holds the database's write lock
    And I record entries until one is refused, at most 3 times
    Then the last record() failed with AuditQueueFullError

  Scenario: Keyword settings win over the environment
    Given the environment variable "CLEVERAGENTS_AUDIT_ASYNC" is "false"
    When I create an audit service with "audit_async" set to "true" in its settings
    Then the service is asynchronous

  Scenario: A .env file in the working directory is read, and the environment wins over it
    Given a ".env" file in the working directory containing:
      """
      CLEVERAGENTS_AUDIT_BATCH_SIZE=32
      CLEVERAGENTS_AUDIT_QUEUE_MAXSIZE=77
      CLEVERAGENTS_AUDIT_ASYNC=false
      """
    And the environment variable "CLEVERAGENTS_AUDIT_BATCH_SIZE" is "8"
    When I create the settings from the environment
    Then the setting "audit_batch_size" is 8
    And the setting "audit_queue_maxsize" is 77
    And the setting "audit_async" is False
