"""SendGrid v3: one client factory and error mapping for mail send, batches and suppressions."""
