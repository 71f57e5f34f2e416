"""Identity and access: roles, policies, principals, tokens and keys (pure logic), and the
credential files Cairn writes."""
