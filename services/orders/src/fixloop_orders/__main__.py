from fixloop_orders.main import main

main()
