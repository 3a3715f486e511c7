"""Where the system under test runs: backends, the Toxiproxy mesh, systems."""
