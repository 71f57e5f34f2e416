"""Identity and access: roles, policies, principals, tokens and keys (pure logic, no I/O)."""
