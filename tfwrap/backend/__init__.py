"""The backend a command uses: where Terraform keeps its state and its lock."""
