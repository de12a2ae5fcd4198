from s3thumbs.cli.main import main

main()
