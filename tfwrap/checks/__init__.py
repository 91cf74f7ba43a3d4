"""The pre-checks: facts about the backend, the findings they lead to, and the policy."""
