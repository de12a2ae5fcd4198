from s3thumbs.cli import main

main()
