"""What the tests share: servers, processes, notifications, task publishing and images."""
