"""The issue: the model of one edition and its issue.yaml."""
