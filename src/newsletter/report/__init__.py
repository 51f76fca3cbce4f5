"""Results per issue (`issues`, `report`): the ledger and SendGrid's events, aggregated in SQL."""
