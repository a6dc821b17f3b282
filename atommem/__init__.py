"""AtomMem: an agent that manages an external memory with atomic CRUD operations, learned end to end."""
