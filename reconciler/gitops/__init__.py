"""Git and GitHub at the edges: history of the desired state, removals, the GitHub API."""
