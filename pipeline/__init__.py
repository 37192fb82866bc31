"""latentforge pipeline: the stages (data, train, evaluate, export, promote) and the CLI."""
