from escr.cli.entry import main

main()
