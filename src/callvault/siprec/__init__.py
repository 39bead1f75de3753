"""callvault.siprec"""
