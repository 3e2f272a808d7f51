__version__ = "0.1.0"
#: Sent with every request, to the API and to the token endpoint.
USER_AGENT = f"flipkart-otc/{__version__}"
