"""Who receives the newsletter: addresses, the subscriber store, CSV import, unsubscribe links."""
