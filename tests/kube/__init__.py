"""Test support: a local Kubernetes API server and job runner (not product code)."""
