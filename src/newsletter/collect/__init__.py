"""`newsletter add`: read sources and merge their articles into issue.yaml."""
