"""callvault.db"""
