"""What every test folder shares: one way to run a plugin's CLI, the fixed clock, the shared data sets."""
