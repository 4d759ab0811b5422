"""What the tests share that is not a fixture: loopback servers, child processes, an unprivileged user,
and the generator of tests/data/pairs."""
