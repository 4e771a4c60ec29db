from flightctl.entry import main

main()
