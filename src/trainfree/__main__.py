from trainfree.cli import main

main()
