"""primarykv: a primary-copy key-value store (n1 holds the data, the others forward to it)."""
