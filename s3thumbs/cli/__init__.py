"""The ``s3thumbs`` command line: ``main`` lists the commands, ``wiring`` builds what they run."""
