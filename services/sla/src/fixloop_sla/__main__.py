from fixloop_sla.main import main

main()
