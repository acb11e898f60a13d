from retailflow.cli import entry

entry()
