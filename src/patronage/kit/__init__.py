"""Domain-free helpers shared by every capability (ids, clocks, pagination, money, crypto)."""
