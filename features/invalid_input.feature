Feature: record() refuses bad input in the caller's thread, and goes on working
  As code that records audit entries
  I want an unknown event type or details that are not JSON to fail in my own call
  So that I see my mistake at once, and it never reaches, stops or corrupts the writer

  Background:
    Given an audit service writing to "audit.db"
    And I have recorded 3 entries

  Scenario Outline: The event type <event_type> is refused with ValueError
    When I try to record an entry of type <event_type>
    Then the record is refused with ValueError
    And the service keeps working and loses nothing accepted before

    Examples:
      | event_type       |
      | 'agent.exploded' |
      | ''               |
      | 'AGENT_STARTED'  |
      | 'Agent.Started'  |
      | ' agent.started' |
      | 42               |
      | None             |
      | b'agent.started' |

  Scenario Outline: The details <details> are refused with <error>
    When I try to record an entry with the details <details>
    Then the record is refused with <error>
    And the error message mentions "<mentions>"
    And the service keeps working and loses nothing accepted before

    Examples: a key that is not a str
      | details                 | error     | mentions |
      | {1: 'one'}              | TypeError | 1        |
      | {None: 'none'}          | TypeError | None     |
      | {('a', 'b'): 1}         | TypeError | ('a', 'b') |
      | {'outer': {2: 'two'}}   | TypeError | 2        |

    Examples: a number that is not finite
      | details                          | error      | mentions |
      | {'score': nan}                   | ValueError | score    |
      | {'score': inf}                   | ValueError | score    |
      | {'score': -inf}                  | ValueError | score    |
      | {'runs': [{'latency': nan}]}     | ValueError | latency  |

    Examples: a value that is not JSON
      | details                          | error     | mentions |
      | {'tags': {'a', 'b'}}             | TypeError | set      |
      | {'raw': b'bytes'}                | TypeError | bytes    |
      | {'when': datetime(2024, 1, 1)}   | TypeError | datetime |

    Examples: not a mapping
      | details                | error     | mentions |
      | ['a', 'list']          | TypeError | list     |
      | 'a string'             | TypeError | str      |
      | 42                     | TypeError | int      |
      | {'a', 'set'}           | TypeError | set      |

  Scenario: A synchronous service refuses bad details before writing anything
    Given an audit service writing to "sync.db" with "audit_async" set to "false"
    And I have recorded 2 entries
    When I try to record an entry with the details {'score': nan}
    Then the record is refused with ValueError
    And the service keeps working and loses nothing accepted before
