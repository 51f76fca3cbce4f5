"""When to send: send times, the schedules store, the SendGrid hand-over and the cron run."""
