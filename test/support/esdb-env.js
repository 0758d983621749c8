process.env.SNAPCAT_E2E_STORE = 'esdb';
