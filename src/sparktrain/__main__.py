from sparktrain.cli import main

main()
